pragma solidity ^0.6.6;

// Anyone can join; once the list is long enough, nobody can finish the loop.
contract Airdrop {
    address[] public members;
    mapping(address => uint256) public points;

    function join() external {
        members.push(msg.sender);
    }

    function award() external {
        for (uint256 i = 0; i < members.length; i++) { // expect: denial-of-service
            points[members[i]] += 1;
        }
    }
}
