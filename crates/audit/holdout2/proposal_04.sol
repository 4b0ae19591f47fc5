pragma solidity ^0.4.24;

contract Ballot {
    struct Proposal {
        bytes32 name;
        uint256 votes;
    }

    Proposal[] public proposals;
    mapping(address => bool) public voted;

    function add(bytes32 name) public {
        proposals.push(Proposal(name, 0));
    }

    function vote(uint256 id) public {
        require(!voted[msg.sender]);
        voted[msg.sender] = true;
        Proposal storage p = proposals[id];
        p.votes += 1;
    }
}
