pragma solidity ^0.5.4;

// tx.origin is whoever signed the transaction, even through a malicious contract.
contract Treasury {
    address payable public owner;

    constructor() public {
        owner = msg.sender;
    }

    function() external payable {}

    function pay(address payable to, uint256 amount) public {
        require(tx.origin == owner); // expect: access-control
        to.transfer(amount);
    }
}
