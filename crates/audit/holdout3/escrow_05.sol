pragma solidity ^0.5.8;

contract Escrow {
    address payable public buyer;
    address payable public seller;
    address public arbiter;

    constructor(address payable _seller, address _arbiter) public payable {
        buyer = msg.sender;
        seller = _seller;
        arbiter = _arbiter;
    }

    function release() public {
        require(msg.sender == buyer || msg.sender == arbiter);
        seller.transfer(address(this).balance);
    }

    function refund() public {
        require(msg.sender == seller || msg.sender == arbiter);
        buyer.transfer(address(this).balance);
    }
}
