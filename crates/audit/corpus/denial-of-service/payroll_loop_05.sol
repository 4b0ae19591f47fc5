pragma solidity ^0.5.2;

// One payee that reverts on receipt blocks everybody's pay.
contract Splitter {
    address payable[] public payees;
    address public owner;

    constructor(address payable[] memory initial) public {
        owner = msg.sender;
        payees = initial;
    }

    function() external payable {}

    function distribute() public {
        require(msg.sender == owner);
        uint256 share = address(this).balance / payees.length;
        for (uint256 i = 0; i < payees.length; i++) {
            payees[i].transfer(share); // expect: denial-of-service
        }
    }
}
